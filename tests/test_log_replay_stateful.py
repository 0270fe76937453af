"""Random sequences of API calls; after every step, replaying the log must equal the table.

A small model of the library predicts each response's status, so the machine also checks
that the API refuses exactly what it should (no copy left, already returned, renewal limit,
unknown ids).
"""

import sqlalchemy as sa
import webtest
from conftest import bearer, issue_token
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from booknexus.log.projection import compare

MAX_RENEWALS = 2  # booknexus.max_renewals in app_settings


class Library(RuleBasedStateMachine):
    app = None  # set by the test, per backend

    users = Bundle("users")
    books = Bundle("books")
    loans = Bundle("loans")

    def __init__(self):
        super().__init__()
        self.connection = self.app.registry["dbengine"].connect()
        self.outer = self.connection.begin()
        with sa.orm.Session(bind=self.connection, join_transaction_mode="create_savepoint") as session:
            _, token = issue_token(session)
            session.commit()
        self.client = webtest.TestApp(
            self.app, extra_environ={"app.dbconnection": self.connection, **bearer(token)}
        )
        self.live_users: set[int] = set()
        self.copies: dict[int, int] = {}  # live book id -> copies
        self.loan_state: dict[int, dict] = {}  # live checkout id -> model
        self.serial = 0

    def teardown(self):
        self.outer.rollback()
        self.connection.close()

    def open_loans(self, book_id: int) -> int:
        return sum(1 for loan in self.loan_state.values() if loan["book"] == book_id and not loan["returned"])

    @rule(target=users)
    def add_user(self):
        self.serial += 1
        user = self.client.post_json(
            "/users", {"name": f"R{self.serial}", "email": f"r{self.serial}@example.org"}, status=201
        ).json
        self.live_users.add(user["id"])
        return user["id"]

    @rule(target=books, copies=st.integers(1, 3))
    def add_book(self, copies):
        book = self.client.post_json(
            "/books", {"title": "T", "author": "A", "copies": copies}, status=201
        ).json
        self.copies[book["id"]] = copies
        return book["id"]

    @rule(target=loans, user=users, book=books)
    def check_out(self, user, book):
        if user not in self.live_users or book not in self.copies:
            expected = 404
        elif self.open_loans(book) >= self.copies[book]:
            expected = 409
        else:
            expected = 201
        response = self.client.post_json("/checkouts", {"userId": user, "bookId": book}, status=expected)
        if expected != 201:
            return multiple()
        self.loan_state[response.json["id"]] = {"user": user, "book": book, "returned": False, "renewals": 0}
        return response.json["id"]

    def expected_for_change(self, loan: int, renewing: bool) -> int:
        state = self.loan_state.get(loan)
        if state is None:
            return 404
        if state["returned"] or (renewing and state["renewals"] >= MAX_RENEWALS):
            return 409
        return 200

    @rule(loan=loans)
    def give_back(self, loan):
        expected = self.expected_for_change(loan, renewing=False)
        self.client.post(f"/checkouts/{loan}/return", status=expected)
        if expected == 200:
            self.loan_state[loan]["returned"] = True

    @rule(loan=loans)
    def renew(self, loan):
        expected = self.expected_for_change(loan, renewing=True)
        self.client.post(f"/checkouts/{loan}/renew", status=expected)
        if expected == 200:
            self.loan_state[loan]["renewals"] += 1

    @rule(loan=consumes(loans))
    def delete_checkout(self, loan):
        self.client.delete(f"/checkouts/{loan}", status=204 if loan in self.loan_state else 404)
        self.loan_state.pop(loan, None)

    @rule(user=consumes(users))
    def delete_user(self, user):
        self.client.delete(f"/users/{user}", status=204 if user in self.live_users else 404)
        self.live_users.discard(user)
        self.loan_state = {k: v for k, v in self.loan_state.items() if v["user"] != user}

    @rule(book=consumes(books))
    def delete_book(self, book):
        self.client.delete(f"/books/{book}", status=204 if book in self.copies else 404)
        self.copies.pop(book, None)
        self.loan_state = {k: v for k, v in self.loan_state.items() if v["book"] != book}

    @invariant()
    def replaying_the_log_reproduces_the_table(self):
        with sa.orm.Session(bind=self.connection, join_transaction_mode="create_savepoint") as session:
            drift = compare(session)
            assert not drift, drift.report()
            live = set(session.scalars(sa.text('SELECT id FROM "Checkouts"')))
        assert live == set(self.loan_state)


def test_replay_equals_table_after_every_step(app):
    Library.app = app
    try:
        run_state_machine_as_test(
            Library,
            settings=settings(
                max_examples=60,
                stateful_step_count=30,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        Library.app = None
