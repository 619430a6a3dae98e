"""Circuit discovery: automated methods scored against compiled ground-truth circuits, then run
over grokking's training."""
