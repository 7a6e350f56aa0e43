"""The request's transaction boundary (app/transaction.py says what it promises)."""

from flask import Flask, Response

from app import transaction


class TerminFlask(Flask):
    """Flask, with one commit per request: after the view has answered, before the answer is sent."""

    def dispatch_request(self) -> Response:
        with transaction.boundary():
            # The response is complete (templates rendered, JSON built) before the commit, so nothing in it
            # reads the database after the commit: a database lost right after a commit cannot fail it.
            return self.make_response(super().dispatch_request())
