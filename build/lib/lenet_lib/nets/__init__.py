"""The networks and their training: MNIST, the models, the step rules (SDLM, Lush's per-digit
rule, CUDA graphs), the epoch loop, and the analyses of a trained network."""
