"""Rules for the data-parallel tests, imported by module path in torchrun's processes."""

from bioscale import hookimpl
from bioscale_dtp import DifferenceTargetPropagation


class NoReduceDTP(DifferenceTargetPropagation):
    """DTP whose inverses train on each rank's own mean only (the all-reduce skipped)."""

    @hookimpl
    def bioscale_update_inverse(self, step):
        step.parallel = None
        return super().bioscale_update_inverse(step)
