"""Circulation's HTTP views: checkouts, holds, and their logs."""
