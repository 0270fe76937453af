"""The accounts' HTTP views: users, and the tokens that log them in."""
