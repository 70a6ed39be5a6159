"""Former home of the merge geometry, now ``mnc.lowering.merged``; these names point there."""

from mnc.lowering.merged import Member, MergedGroup, PhaseSplit, merged_groups

SourceGroup = MergedGroup
group_projections = merged_groups

__all__ = ["Member", "PhaseSplit", "SourceGroup", "group_projections"]
