"""A bare Flask app returning one fixed TwiML document: the floor the IVR is compared against.

Same framework, same gunicorn settings, same requests; no signature check, Redis, SQL or
flow engine. The ratio IVR/bare says what the IVR's own work costs.
"""

from __future__ import annotations

from flask import Flask, Response

TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US" '
         'voice="Polly.Joanna">Thanks for calling Acme.</Say><Gather action="/voice/input?'
         'node=main_menu&amp;turn=1" actionOnEmptyResult="true" finishOnKey="" input="dtmf" '
         'method="POST" numDigits="1" timeout="5"><Say language="en-US" voice="Polly.Joanna">'
         'For billing, press 1. For technical support, press 2. To make a complaint, press 3. '
         'To speak to someone, press 0.</Say></Gather><Redirect method="POST">/voice/input?'
         'node=main_menu&amp;turn=1&amp;timeout=1</Redirect></Response>')

app = Flask(__name__)


@app.post("/voice/<path:_rest>")
def voice(_rest: str) -> Response:
    return Response(TWIML, 200, mimetype="text/xml")
