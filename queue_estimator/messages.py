"""Every caller-facing string of the wait estimates, in one place per language."""

from __future__ import annotations

EN = {
    "under_minute": "less than a minute",
    "about_one_minute": "about 1 minute",
    "about_minutes": "about {n} minutes",
    "between_minutes": "between {low} and {high} minutes",
    "over_hour": "more than an hour",
    "about_hours": "about {n} hours",
    "over_hours": "more than {n} hours",
}

LANGUAGES = {"en": EN}
