"""The memory baseline: the smallest Flask app there is, importing nothing of Termin's (bench/memory.py)."""

from flask import Flask

app = Flask("hello")


@app.get("/")
def index():
    return "Hello, World!"
