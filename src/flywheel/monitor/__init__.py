"""Production monitoring: the prediction log, reference profiles of what a model was
trained on, and the drift statistics that compare the two (scipy.stats; pure apart from
reading and writing files)."""
