"""A checked patch to a plan: one record per step, kernel fusion, buffer colouring, the memory
estimate, and the plan and step types the compiler emits."""
