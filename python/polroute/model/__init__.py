"""The model: a namespace's routing state (Policy), its compiled read-only copies,
bulk evaluation, the LPM and the kernel build profiles."""
