"""Login tokens are personal data too: the retention job prunes the expired ones, and a
subject access export lists a reader's logins (their times, never a token or its hash)."""

import os
import subprocess
import sys
from datetime import timedelta

import sqlalchemy as sa
from conftest import ROOT, Client, issue_token

from booknexus.accounts import tokens
from booknexus.accounts.models import Token, User
from booknexus.db.engines import DATABASE_URL_ENV
from booknexus.db.schema import utcnow


def test_the_export_lists_a_readers_logins_never_their_hashes(app, dbconnection, dbsession, testapp):
    reader, token = issue_token(dbsession, role="member")
    second, _ = tokens.issue(dbsession, reader, timedelta(hours=2))
    dbsession.commit()
    me = Client(app, dbconnection, token)
    me.delete("/auth/tokens/current", status=204)  # logged out: revoked, still within its life
    exported = testapp.get(f"/users/{reader.id}/export").json
    rows = dbconnection.execute(
        sa.select(Token.id, Token.token_hash).where(Token.user_id == reader.id).order_by(Token.id)
    ).all()
    assert [login["id"] for login in exported["tokens"]] == [token_id for token_id, _ in rows]
    assert set(exported["tokens"][0]) == {"id", "createdAt", "expiresAt", "revokedAt"}
    assert exported["tokens"][0]["revokedAt"] is not None and exported["tokens"][1]["revokedAt"] is None
    text = testapp.get(f"/users/{reader.id}/export").text
    assert all(token_hash not in text for _, token_hash in rows) and token not in text and second not in text


def test_the_retention_job_prunes_expired_tokens_only(backend, fresh_database, app_database):
    url = fresh_database(backend)
    engine = sa.create_engine(url)
    with sa.orm.Session(engine) as session, session.begin():
        user = User(name="Old logins", email="old@example.org")
        session.add(user)
        session.flush()
        now = utcnow()
        for hours in (-48, -1, 1, 24):  # two expired, two live (one of them revoked)
            session.add(
                Token(
                    user_id=user.id,
                    token_hash=f"{hours:+}".ljust(64, "x"),
                    expires_at=now + timedelta(hours=hours),
                )
            )
        session.flush()
        session.execute(sa.update(Token).where(Token.expires_at > now).values(revoked_at=now))
        session.execute(
            sa.update(Token).where(Token.expires_at > now + timedelta(hours=2)).values(revoked_at=None)
        )
    command = [sys.executable, "-m", "booknexus.operations.scripts.anonymise", str(ROOT / "production.ini")]
    env = {**os.environ, DATABASE_URL_ENV: url}
    dry = subprocess.run([*command, "--dry-run"], env=env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and '"tokens_pruned": 2' in dry.stdout, dry
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(Token)) == 4  # a dry run
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and '"tokens_pruned": 2' in done.stdout, done
    with engine.connect() as connection:
        left = connection.execute(sa.select(Token.expires_at > utcnow())).scalars().all()
    assert left == [True, True]  # the live ones, revoked or not
    engine.dispose()
