"""Suite-wide Hypothesis settings: how fast a shared 2-core machine generates examples is no behaviour of ours, so a
slow draw (a pause of the machine, a collection) does not fail a property test; every other health check stays."""

from hypothesis import HealthCheck, settings

settings.register_profile("shellwatch", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shellwatch")
