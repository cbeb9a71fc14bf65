"""Model families that exist only for the test suite: each exercises one part of the
model contract (:mod:`aebench.models.base`) that the built-in families do not."""
