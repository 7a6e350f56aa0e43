"""Scheduling pages: the pure slot engine (``availability``); pages, booking and routes build on it."""
