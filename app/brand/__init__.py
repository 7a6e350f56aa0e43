"""The company's brand (name, logo, colour, favicon) and each rep's photo and headline (issue 14, E4, D2)."""
