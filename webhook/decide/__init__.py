"""Review in, verdict out, against the state: reading the review, judging it
(ratcheting included), asking who may make a change, the service that holds
the state and the claims, and the audit of what the cluster already has.

May import `model`, `state`, `rules` and `cluster`; never `serving` or `cli`."""
