"""Saving result videos, safely: the network they may reach, the file, and the job that saves it.

`files` saves one video (streamed, size-capped, checked by signature, atomic); `network`
allows only public addresses, checked on the address actually connected to; `saving` runs one
background save job per task with its overall deadline and per-task limits.
"""
