"""The ClientApp of simulations: fedvlm's, with the `[[simulation.adversary]]` roles of virtual sites."""

from client.app import build_client_app
from simulations.adversaries import adversary_of

app = build_client_app(role_of=adversary_of)
