"""The rep's side of scheduling pages: list, create, edit, preview, share, delete (P1-P4)."""

from flask import Blueprint

bp = Blueprint("pages", __name__, url_prefix="/pages")
