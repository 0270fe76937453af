def test_health(testapp):
    assert testapp.get("/health").json == {"status": "ok", "database": "ok"}
