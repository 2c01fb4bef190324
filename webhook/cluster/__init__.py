"""Talking to the apiserver: requests, list+watch into the index, claims on
unique slots, the webhook's own registration, and the calls each mode makes.

May import `model`, `state` and `settings`; never `decide`, `render`, `tls`,
`serving` or `cli`."""
