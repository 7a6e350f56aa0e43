"""What happened to a booking, for whoever must react (app/pages/notifications.py tells the rep and the
visitor). The services send these inside the transaction; they never import who listens, so the
notifications (which build links from the pages' paths) can depend on the services and not the reverse.

Each is sent with the booking (or the page) as sender and the keyword arguments its comment names.
"""

from blinker import Namespace

_signals = Namespace()

booking_confirmed = _signals.signal("booking-confirmed")  # sender: Booking; token
booking_rescheduled = _signals.signal("booking-rescheduled")  # sender: Booking; token, previous_start/end
booking_cancelled = _signals.signal("booking-cancelled")  # sender: Booking; by_visitor
booking_attempted_while_paused = _signals.signal("booking-attempted-while-paused")  # sender: page; attempt
booking_held = _signals.signal(
    "booking-held"
)  # sender: BookingHold; token, minutes (confirm-your-email link)
