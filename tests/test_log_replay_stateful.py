"""Random sequences of API calls; after every step, replaying the logs must equal the tables.

A small model of the library predicts each response's status and every hold's status, so
the machine also checks that the API refuses exactly what it should (no copy on the shelf,
already returned, renewal limit, someone waiting, already holding, copies below the items
off the shelf, unknown ids) and that every item coming back to the desk goes to the first in
the queue (one branch: every hold is picked up where the item is), while a copy on the shelf
waits there for the desk to pull it. A reader deleted with a loan leaves its item missing.
"""

import uuid

import pytest
import sqlalchemy as sa
from conftest import Client, issue_token
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

from booknexus.circulation.eventlog.projection import compare_all

pytestmark = pytest.mark.slow

MAX_RENEWALS = 2  # booknexus.max_renewals in app_settings
MAX_LOANS, MAX_HOLDS = 10, 5
OPEN = ("waiting", "ready")


class Library(RuleBasedStateMachine):
    """One example after another on the same database (a fresh one for each would cost a
    template copy per example): each example's readers and books are its own, and the tables
    are compared with its model on its own rows."""

    app = connection = None  # set by the test, per backend: the app, the test's connection

    users = Bundle("users")
    books = Bundle("books")
    loans = Bundle("loans")
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        with sa.orm.Session(bind=self.connection) as session:
            _, token = issue_token(session)
            session.commit()
            # the rows earlier examples left
            self.earlier_loans = set(session.scalars(sa.text('SELECT id FROM "Checkouts"')))
            self.earlier_holds = set(session.scalars(sa.text('SELECT id FROM "Holds"')))
        self.client = Client(self.app, self.connection, token)
        self.run = uuid.uuid4().hex[:8]  # the emails of this example's readers
        self.live_users: set[int] = set()
        self.copies: dict[int, int] = {}  # live book id -> copies
        self.shelved: dict[int, int] = {}  # live book id -> items on the shelf
        self.loan_state: dict[int, dict] = {}  # live checkout id -> model
        self.hold_state: dict[int, dict] = {}  # live hold id -> model (any status)
        self.serial = 0

    def open_loans(self, book_id: int, user_id: int | None = None) -> int:
        """Open loans of a book (by ``user_id`` only, if given)."""
        return sum(
            1
            for loan in self.loan_state.values()
            if loan["book"] == book_id and not loan["returned"] and user_id in (None, loan["user"])
        )

    def loans_of(self, user_id: int) -> int:
        return sum(1 for loan in self.loan_state.values() if loan["user"] == user_id and not loan["returned"])

    def holds_on(self, book_id: int, *statuses: str) -> list[int]:
        return sorted(
            hold_id
            for hold_id, hold in self.hold_state.items()
            if hold["book"] == book_id and hold["status"] in statuses
        )

    def open_hold(self, user_id: int, book_id: int) -> int | None:
        return next((h for h in self.holds_on(book_id, *OPEN) if self.hold_state[h]["user"] == user_id), None)

    def in_hand(self, book_id: int) -> None:
        """The model of routing: an item at the desk goes to the first waiting hold, else the shelf."""
        if book_id not in self.copies:
            return
        waiting = self.holds_on(book_id, "waiting")
        if waiting:
            self.hold_state[waiting[0]]["status"] = "ready"
        else:
            self.shelved[book_id] += 1

    def forget(self, gone) -> None:
        self.loan_state = {k: v for k, v in self.loan_state.items() if not gone(v)}
        self.hold_state = {k: v for k, v in self.hold_state.items() if not gone(v)}

    @rule(target=users)
    def add_user(self):
        self.serial += 1
        user = self.client.post_json(
            "/users",
            {"name": f"R{self.serial}", "email": f"r{self.serial}-{self.run}@example.org"},
            status=201,
        ).json
        self.live_users.add(user["id"])
        return user["id"]

    @rule(target=books, copies=st.integers(1, 2))
    def add_book(self, copies):
        book = self.client.post_json(
            "/books", {"title": "T", "author": "A", "copies": copies}, status=201
        ).json
        self.copies[book["id"]] = self.shelved[book["id"]] = copies
        return book["id"]

    @rule(target=loans, user=users, book=books)
    def check_out(self, user, book):
        mine = self.open_hold(user, book)
        shelved_for_me = mine is not None and self.hold_state[mine]["status"] == "ready"
        if user not in self.live_users or book not in self.copies:
            expected = 404
        elif self.loans_of(user) >= MAX_LOANS:
            expected = 409
        elif not shelved_for_me and not self.shelved[book]:
            expected = 409
        else:
            expected = 201
        response = self.client.post_json("/checkouts", {"userId": user, "bookId": book}, status=expected)
        if expected != 201:
            return multiple()
        self.loan_state[response.json["id"]] = {"user": user, "book": book, "returned": False, "renewals": 0}
        if not shelved_for_me:
            self.shelved[book] -= 1
        if mine is not None:
            self.hold_state[mine]["status"] = "fulfilled"
        return response.json["id"]

    @rule(target=holds, user=users, book=books)
    def place_hold(self, user, book):
        return self.hold_for(user, book)

    # queues need several readers after one book: a crowd of new readers each place a hold,
    # on a book on loan or any book
    @rule(target=holds, book=books, crowd=st.integers(2, 4))
    def crowd_holds(self, book, crowd):
        placed = [self.hold_for(self.add_user(), book) for _ in range(crowd)]
        return multiple(*(hold for hold in placed if isinstance(hold, int)))

    @rule(target=holds, loan=loans, crowd=st.integers(1, 3), then_return=st.booleans())
    def crowd_behind_a_loan(self, loan, crowd, then_return):
        if loan not in self.loan_state:
            return multiple()
        placed = self.crowd_holds(self.loan_state[loan]["book"], crowd)
        if then_return:  # the copy must go to the first of the crowd
            self.give_back(loan)
        return placed

    def hold_for(self, user, book):
        if user not in self.live_users or book not in self.copies:
            expected = 404
        elif self.open_hold(user, book) is not None or self.open_loans(book, user):
            expected = 409
        elif (
            sum(1 for h in self.hold_state.values() if h["user"] == user and h["status"] in OPEN) >= MAX_HOLDS
        ):
            expected = 409
        else:
            expected = 201
        response = self.client.post_json("/holds", {"userId": user, "bookId": book}, status=expected)
        if expected != 201:
            return multiple()
        self.hold_state[response.json["id"]] = {"user": user, "book": book, "status": "waiting"}
        assert response.json["status"] == "waiting"  # a shelved copy waits for the desk to pull it
        return response.json["id"]

    @rule(hold=holds)
    def cancel_hold(self, hold):
        state = self.hold_state.get(hold)
        expected = 404 if state is None else 204 if state["status"] in OPEN else 409
        self.client.delete(f"/holds/{hold}", status=expected)
        if expected == 204:
            was, state["status"] = state["status"], "cancelled"
            if was == "ready":  # its item, back in the desk's hands
                self.in_hand(state["book"])

    @rule(book=books, copies=st.integers(1, 3))
    def change_copies(self, book, copies):
        if book not in self.copies:
            expected = 404
        elif copies < self.copies[book] - self.shelved[book]:  # only shelved items are withdrawn
            expected = 409
        else:
            expected = 200
        self.client.patch_json(f"/books/{book}", {"copies": copies}, status=expected)
        if expected == 200:
            self.shelved[book] += copies - self.copies[book]
            self.copies[book] = copies

    def expected_for_change(self, loan: int, renewing: bool) -> int:
        state = self.loan_state.get(loan)
        if state is None:
            return 404
        if state["returned"]:
            return 409
        if renewing and (self.holds_on(state["book"], "waiting") or state["renewals"] >= MAX_RENEWALS):
            return 409
        return 200

    @rule(loan=loans)
    def give_back(self, loan):
        expected = self.expected_for_change(loan, renewing=False)
        self.client.post(f"/checkouts/{loan}/return", status=expected)
        if expected == 200:
            self.loan_state[loan]["returned"] = True
            self.in_hand(self.loan_state[loan]["book"])

    @rule(loan=loans)
    def renew(self, loan):
        expected = self.expected_for_change(loan, renewing=True)
        self.client.post(f"/checkouts/{loan}/renew", status=expected)
        if expected == 200:
            self.loan_state[loan]["renewals"] += 1

    @rule(loan=consumes(loans))
    def delete_checkout(self, loan):
        state = self.loan_state.pop(loan, None)
        self.client.delete(f"/checkouts/{loan}", status=204 if state else 404)
        if state and not state["returned"] and state["book"] in self.copies:
            self.shelved[state["book"]] += 1  # a loan made by mistake: its item back on the shelf

    @rule(user=consumes(users))
    def delete_user(self, user):
        self.client.delete(f"/users/{user}", status=204 if user in self.live_users else 404)
        self.live_users.discard(user)
        # their loans' items go missing; their ready holds' items to the next in line
        freed = [h["book"] for h in self.hold_state.values() if h["user"] == user and h["status"] == "ready"]
        self.forget(lambda record: record["user"] == user)
        for book in freed:
            self.in_hand(book)

    @rule(book=consumes(books))
    def delete_book(self, book):
        self.client.delete(f"/books/{book}", status=204 if book in self.copies else 404)
        self.copies.pop(book, None)
        self.shelved.pop(book, None)
        self.forget(lambda record: record["book"] == book)

    @invariant()
    def replaying_the_logs_reproduces_the_tables(self):
        with sa.orm.Session(bind=self.connection, join_transaction_mode="create_savepoint") as session:
            drifts = compare_all(session)
            assert not any(drifts), "\n".join(drift.report() for drift in drifts)
            live = set(session.scalars(sa.text('SELECT id FROM "Checkouts"'))) - self.earlier_loans
            holds = {
                hold_id: status
                for hold_id, status in session.execute(sa.text('SELECT id, status FROM "Holds"'))
                if hold_id not in self.earlier_holds
            }
        assert live == set(self.loan_state)
        assert holds == {hold_id: hold["status"] for hold_id, hold in self.hold_state.items()}


def test_replay_equals_table_after_every_step(app, dbconnection):
    Library.app, Library.connection = app, dbconnection
    try:
        run_state_machine_as_test(
            Library,
            settings=settings(
                max_examples=50,
                stateful_step_count=30,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        Library.app = Library.connection = None
