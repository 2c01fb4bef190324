"""Certificates: make them, plan the managed pair and its rotation, share it
through a Secret, and reload what is served without a restart.

Imports nothing else of the project but `cluster.api`, to keep the Secret."""
