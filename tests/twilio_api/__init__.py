"""Twilio's REST contract for the tests: the npm packages and the tightening step."""
