"""A local, secured Flower federation for trying fedvlm's Deployment Engine path on one machine."""
