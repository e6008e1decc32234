"""Plain data: the requests that change a policy, and what the model reports back."""
