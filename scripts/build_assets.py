"""Build the hashed front-end files into static/dist/ (app/web/assets.py says how); `make install` runs it."""

import sys

from app.web.assets import build

if __name__ == "__main__":
    for logical, built in build(clean=True).items():
        sys.stdout.write(f"{logical} -> static/dist/{built}\n")
