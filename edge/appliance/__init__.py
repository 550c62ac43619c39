"""The Raspberry Pi appliance around the agent (design.md, "The appliance").

- :mod:`edge.appliance.gpio`: status LED, alert LED or buzzer, button (gpiozero).
- :mod:`edge.appliance.notify`: systemd readiness and watchdog (sd_notify(3)).
- :mod:`edge.appliance.metrics`: Prometheus text on 127.0.0.1 (prometheus-client).
- :mod:`edge.appliance.runner`: ``edge run`` as a service: all of the above around the
  agent, and the fault blink on an invalid boot-partition config.

Submodules are imported on use (gpiozero and prometheus-client are not loaded by
``import edge.appliance``).
"""

__all__: list[str] = []
