"""Probes: the only code that touches the OS, the GPU, subprocesses and TensorFlow.

`registry` lists them, `context` is what each may know, `scheduler` runs them (in this
process, in a fork, or in a child interpreter, with timeouts), `isolate` is the fork and
child-process machinery; every other module here is one probe.
"""
