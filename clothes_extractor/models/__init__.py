"""Generator (smp Unet with colour + alpha heads) and conditional PatchGAN discriminator."""

from clothes_extractor.models.discriminator import (
    DiscriminatorConfig,
    PatchDiscriminator,
    build_discriminator,
    receptive_field,
)
from clothes_extractor.models.generator import (
    Generator,
    GeneratorConfig,
    GeneratorOutput,
    build_generator,
    check_size,
)

__all__ = [
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "GeneratorOutput",
    "PatchDiscriminator",
    "build_discriminator",
    "build_generator",
    "check_size",
    "receptive_field",
]
