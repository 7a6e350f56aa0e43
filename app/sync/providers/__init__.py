"""Calendar providers behind one Protocol (base.py): Google Calendar v3, Microsoft Graph, CalDAV."""
