"""The caller simulator: plays Twilio's part against our server; calls are tested without a phone.

    app = create_app(config)
    call = SimulatedCall(InProcessTransport(app, config.server.public_base_url),
                         config.twilio.auth_token, from_="+14155550100")
    call.dial(); call.expect_heard("Thanks for calling"); call.press("1")
"""

from .caller import SimulatedCall
from .model import DialOutcome, Moment, SimulatorError, Transfer, new_sid
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
           "RecordingsServer", "SimulatedCall", "SimulatorError", "Transfer", "Transport",
           "TransportError", "TwiMLError", "new_sid", "parse_twiml", "synthesize",
           "twilio_signature"]
