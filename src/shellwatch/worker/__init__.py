"""The Faust worker: the prefilter stage, the correlation agent, web, metrics, health."""
