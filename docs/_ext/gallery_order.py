"""The order of the gallery: sections, and examples within each section.

Each section is a folder of ``examples/`` with a ``README.txt`` (its title and
introduction). A new example goes in the folder of its topic and in
``EXAMPLES`` below, where it should appear; an example left out comes after
the listed ones of its section, in alphabetical order.
"""

SECTIONS = ["rules", "rd_layers", "stacking", "practice"]

EXAMPLES = [
    # rules
    "plot_dfa_vs_bp.py",
    "plot_linear_network.py",
    "plot_alignment_angles.py",
    "plot_learning_rules.py",
    "plot_custom_rule.py",
    "plot_zero_init.py",
    "plot_deep_network.py",
    "plot_conv_rules.py",
    # rd_layers
    "plot_rd_layers.py",
    # stacking
    "plot_stacking.py",
    # practice
    "plot_grid_search.py",
    "plot_torch.py",
]


class ExampleOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in EXAMPLES:
            return (0, EXAMPLES.index(filename), filename)
        return (1, 0, filename)

    def __repr__(self):
        # sphinx-gallery compares configurations by their repr.
        return f"<{type(self).__name__}: {EXAMPLES}>"
