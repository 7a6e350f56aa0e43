"""The visitor's side of scheduling pages, on the app host and on tenants' verified domains (P1, P6, D2)."""

from flask import Blueprint

bp = Blueprint("booking", __name__)
