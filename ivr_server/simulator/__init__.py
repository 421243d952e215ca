"""The caller simulator: plays Twilio's part against our server; calls are tested without a phone.

    app = create_app(config)
    call = SimulatedCall(InProcessTransport(app, config.server.public_base_url),
                         config.twilio.auth_token, from_="+14155550100")
    call.dial(); call.expect_heard("Thanks for calling"); call.press("1")

A call the server places through Twilio's REST API (a callback) is answered with
`answer_outbound(transport, token, seen.form)` or ends unanswered with `fail_outbound`.
"""

from .caller import SimulatedCall
from .model import DialOutcome, Moment, SimulatorError, Transfer, new_sid
from .outbound import answer_outbound, fail_outbound
from .queues import SimulatedQueues
from .recordings import RecordingsServer
from .speaking import synthesize
from .transport import (
                        HttpResult,
                        HttpTransport,
                        InProcessTransport,
                        Transport,
                        TransportError,
                        twilio_signature,
)
from .twiml_reader import TwiMLError, parse_twiml

__all__ = ["DialOutcome", "HttpResult", "HttpTransport", "InProcessTransport", "Moment",
           "RecordingsServer", "SimulatedCall", "SimulatedQueues", "SimulatorError", "Transfer",
           "Transport", "TransportError", "TwiMLError", "answer_outbound", "fail_outbound",
           "new_sid", "parse_twiml", "synthesize", "twilio_signature"]
