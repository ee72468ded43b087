"""Pure planners: (spec, observed state, now) -> desired status, children and events.

Nothing here imports kopf or kubernetes (a checked rule), so every decision is unit-testable.
"""
