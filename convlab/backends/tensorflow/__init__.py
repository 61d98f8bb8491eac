"""The TensorFlow backend (TensorFlow 2 with Keras 3)."""

from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec(
    name="tensorflow",
    adapter="convlab.backends.tensorflow.adapter:TensorFlowBackend",
    aliases=("tf",),
    modules=("tensorflow", "keras"),  # EagerTensor, tf.Variable; keras.Variable (layer weights)
    extra="tensorflow",
    # Imported after TensorFlow, which loads its own copies of shared native libraries, torch can fail.
    import_first=("torch",),
    reference="convlab.backends.tensorflow.reference",
)
