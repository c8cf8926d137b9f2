"""Render speed of compiled variants (templates compiled once, rendered many times).

Usage: python -m bench.render_speed [--n 20000]   (no database needed)
Prints microseconds per render for an email (brand layout, CSS inlined at compile time), an SMS
(with its segment count) and a push notification, median of 3 runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

HTML = (
    "<h1>Spring is here, {{ first_name }}</h1>"
    + "<p>Our new collection has arrived at {{ store_name }}. Come and see it this weekend.</p>" * 20
    + '<p><a href="https://shop.example.com/spring">Shop now</a></p>'
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from campaigns.composer import CompiledVariant
    from campaigns.models import Variant
    from campaigns.rendering import placeholder_context

    cells = {
        "email": Variant(
            channel="email", subject="Hi {{ first_name }}", preheader="New at {{ store_name }}", html_body=HTML
        ),
        "sms": Variant(channel="sms", sms_body="Tandem Stores: hi {{ first_name }}, 20% off. Reply STOP to opt out"),
        "push": Variant(channel="push", push_title="Hi {{ first_name }}", push_body="New in {{ store_name }}"),
    }
    names = ["Ann", "Bob", "Zoë", "", "Li"]
    contexts = [
        placeholder_context(links={"unsubscribe_url": f"https://m.example/u/{i}", "preferences_url": "https://m/p"})
        | {"first_name": names[i % 5] or "friend"}
        for i in range(args.n)
    ]
    for channel, variant in cells.items():
        started = time.perf_counter()
        compiled = CompiledVariant(variant)
        compile_ms = (time.perf_counter() - started) * 1000
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            for context in contexts:
                compiled.render(context)
            runs.append((time.perf_counter() - started) / args.n * 1e6)
        print(f"{channel:<6} compile {compile_ms:6.2f} ms   render {statistics.median(runs):7.1f} us/message")


if __name__ == "__main__":
    main()
