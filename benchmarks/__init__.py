"""Side-by-side benchmarks of lumos against peer libraries; ``make bench`` runs them all."""
