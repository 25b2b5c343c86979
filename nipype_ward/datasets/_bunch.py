"""The container the data loaders return."""


class Bunch(dict):
    """A dict whose keys are also attributes, as nilearn's fetchers return.

    ``bunch["func"]`` and ``bunch.func`` are the same value, and it is a
    :class:`dict` in every other way (``get``, ``==``, ``isinstance``). It
    behaves as ``sklearn.utils.Bunch``, which it replaces here because
    importing scikit-learn costs ~0.5 s for this one class.
    """

    def __init__(self, **kwargs):
        super().__init__(kwargs)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __dir__(self):
        return self.keys()
