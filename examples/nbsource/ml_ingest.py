"""03: the shuffled ML ingest: random_shuffle, streaming_split, 4 trainer actors, 5 epochs."""
from .cells import QUIET_RAY_DATA, code, md

ML_INGEST = [
    md(
        """
# Ejemplo: Ingesta de ML a gran escala

**Qué aprenderás:** a construir una canalización de ingesta para aprendizaje automático con
Ray Data: en cada época, un barajado global de los datos, que se dividen en partes iguales
para 4 actores entrenadores (`%%ray_actor`), y cada uno recorre su parte por lotes, durante 5
épocas. Medimos el tiempo de toda la ingesta.

**Duración:** unos 10 minutos de lectura; ejecutarlo tarda menos de un minuto con el tamaño
por defecto (4 MiB) en un portátil de 2 núcleos.

En este ejemplo, aprenderá a crear, desplegar y escalar una canalización de ingestión
aleatoria de aprendizaje automático utilizando Ray Dataset.

* Cómo construir una tubería de ingesta aleatoria que carga, mezcla y alimenta datos en
  entrenadores distribuidos en unas pocas líneas de código;
* Cómo escalar el pipeline desde la ingesta de datos de 100MiB a datos de 500GiB.

El tamaño de los datos se elige con la variable de entorno `RAY_MAGIC_INGEST_MIB`: por
defecto 4 MiB para que el cuaderno sea rápido; el tutorial empieza en 100 MiB
(`RAY_MAGIC_INGEST_MIB=100`) y llega a 500 GiB en un cluster.

([Figura: la canalización de ingesta](https://docs.ray.io/en/master/_images/dataset-repeat-2.svg))
""",
        """
# Example: large-scale ML ingest

**What you will learn:** to build a machine-learning ingest pipeline with Ray Data: each
epoch, a global shuffle of the data, which is split into equal parts for 4 training actors
(`%%ray_actor`), each of which iterates over its part in batches, for 5 epochs. We time the
whole ingest.

**How long:** about 10 minutes of reading; running it takes under a minute at the default
size (4 MiB) on a 2-core laptop.

In this example, you will learn how to build, deploy and scale a shuffled machine-learning
ingest pipeline using Ray Dataset.

* How to build a shuffled ingest pipeline that loads, shuffles and feeds data into
  distributed trainers in a few lines of code;
* How to scale the pipeline from ingesting 100 MiB of data to 500 GiB.

The data size comes from the environment variable `RAY_MAGIC_INGEST_MIB`: 4 MiB by default
so that the notebook is quick; the tutorial starts at 100 MiB (`RAY_MAGIC_INGEST_MIB=100`)
and goes up to 500 GiB on a cluster.

([Figure: the ingest pipeline](https://docs.ray.io/en/master/_images/dataset-repeat-2.svg))
""",
    ),
    md(
        """
**Qué cambió en Ray.** El tutorial usa `DatasetPipeline`: `.repeat(num_epochs)`,
`.random_shuffle_each_window()`, `.split(num_shards, equal=True)` y, en cada entrenador,
`shard.iter_epochs()`. Esas APIs (y `RandomIntRowDatasource`) ya no existen en Ray 2.60.
Hoy se escribe así:

* `ds.random_shuffle()`: un barajado global. Cada vez que el dataset se recorre de nuevo,
  el barajado se repite con otro orden: una época, un barajado.
* `ds.streaming_split(n, equal=True)`: `n` iteradores que reciben partes iguales del
  dataset mientras se ejecuta. Los `n` consumidores deben leer a la vez (cada uno en su
  actor), porque comparten una sola ejecución.
* una pasada de `iter_batches()` por época: en cada época, cada entrenador recorre su
  iterador de nuevo, y eso vuelve a leer y barajar los datos.
""",
        """
**What changed in Ray.** The tutorial uses `DatasetPipeline`: `.repeat(num_epochs)`,
`.random_shuffle_each_window()`, `.split(num_shards, equal=True)` and, in each trainer,
`shard.iter_epochs()`. Those APIs (and `RandomIntRowDatasource`) no longer exist in Ray
2.60. Today one writes:

* `ds.random_shuffle()`: a global shuffle. Each time the dataset is iterated again, the
  shuffle runs again in another order: one epoch, one shuffle.
* `ds.streaming_split(n, equal=True)`: `n` iterators that receive equal parts of the
  dataset while it runs. The `n` consumers must read at the same time (each in its actor),
  because they share one execution.
* one `iter_batches()` pass per epoch: each epoch, every trainer iterates over its iterator
  again, which reads and shuffles the data again.
""",
    ),
    code(
        """
import os
import shutil
import tempfile
import time

import numpy as np
import ray
"""
    ),
    code("%load_ext ray_magic"),
    code("%ray_init", "init"),
    *QUIET_RAY_DATA,
    md(
        """
¡Ejecutémoslo! Ahora vamos a ejecutar el canal de datos de extremo a extremo; primero,
analicemos algunos argumentos: 4 entrenadores, 5 épocas, filas de 10 columnas de enteros
(80 bytes por fila).
""",
        """
Let's run it! Now we will run the data pipeline end to end; first, let's go over some
arguments: 4 trainers, 5 epochs, rows of 10 integer columns (80 bytes per row).
""",
    ),
    code(
        """
NUM_TRAINING_WORKERS = 4
NUM_EPOCHS = 5
NUM_COLUMNS = 10
SIZE_100MiB = 100 * 1024 * 1024

# The tutorial ingests 100 MiB and more; the default here is small, for a quick run.
DATA_SIZE = int(float(os.environ.get("RAY_MAGIC_INGEST_MIB", "4")) * 1024 * 1024)
num_rows = DATA_SIZE // (8 * NUM_COLUMNS)
print(f"{DATA_SIZE / SIZE_100MiB:.2f} x 100 MiB: {num_rows:,} rows")
""",
        "parameters",
    ),
    code('print(f"Count of nodes: {len(ray.nodes())}")'),
    md(
        """
### Los datos de entrenamiento

El tutorial generaba filas de enteros aleatorios con `RandomIntRowDatasource`. Aquí
partimos de `ray.data.range(num_rows)` (una columna `id`) y añadimos las demás columnas con
una celda `%%ray_data`: con `--batch-format numpy` el lote `batch` es un diccionario de
arrays, y la última expresión es el lote nuevo. Luego lo escribimos como Parquet en una
carpeta temporal.
""",
        """
### The training data

The tutorial generated rows of random integers with `RandomIntRowDatasource`. Here we start
from `ray.data.range(num_rows)` (one `id` column) and add the other columns with a
`%%ray_data` cell: with `--batch-format numpy` the batch `batch` is a dict of arrays, and the
last expression is the new batch. Then we write it as Parquet to a temporary folder.
""",
    ),
    code("ids = ray.data.range(num_rows)"),
    code(
        """
%%ray_data random_rows = ids --batch-format numpy
rng = np.random.default_rng(int(batch["id"][0]))
n = len(batch["id"])
{"id": batch["id"], **{f"c{i}": rng.integers(0, 2**62, n) for i in range(1, NUM_COLUMNS)}}
"""
    ),
    code(
        """
training_data_dir = tempfile.mkdtemp(prefix="ray_ingest_")
random_rows.write_parquet(training_data_dir)
"""
    ),
    md(
        """
### Construir una cadena de ingesta aleatoria

Un proceso de ingesta típico de aprendizaje automático consta de los 4 pasos siguientes:

* Cargar los datos de entrenamiento desde un almacenamiento externo;
* Iterar sobre los datos durante varias épocas;
* En cada época, aplicar global shuffle para decorrelacionar los datos;
* En cada época, dividir los datos barajados en fragmentos, y alimentar los fragmentos a los
  entrenadores distribuidos;

Veamos cómo implementamos este proceso utilizando el conjunto de datos Ray:
""",
        """
### Building a shuffled ingest pipeline

A typical machine-learning ingest process consists of the following 4 steps:

* Load the training data from external storage;
* Iterate over the data for several epochs;
* In each epoch, apply a global shuffle to decorrelate the data;
* In each epoch, split the shuffled data into shards, and feed the shards to the distributed
  trainers;

Let's see how we implement this process with Ray Dataset:
""",
    ),
    code(
        """
def create_shuffle_pipeline(training_data_dir: str, num_shards: int):
    return (
        ray.data.read_parquet(training_data_dir)
        .random_shuffle()
        .streaming_split(num_shards, equal=True)
    )
"""
    ),
    md(
        """
Ahora hemos definido una función `create_shuffle_pipeline` que crea un pipeline de
ingestión. Lee `training_data_dir` y lo divide en `num_shards` partes; cada vez que los
entrenadores recorren sus partes (una época), los datos se barajan de nuevo.

### Alimentar el pipeline a los entrenadores

Implementemos también un `TrainingWorker` que consuma los datos barajados de cada shard.

Para simplificar, definiremos un Ray Actor que emule a los training workers.
Específicamente,

1. Toma un shard del shuffle pipeline para entrenar;
2. itera sobre el fragmento una vez por época;
3. Luego consume el conjunto de datos por lotes;

Con `%%ray_actor`, la clase de la celda se convierte en clase actor, como con
`@ray.remote`. Cada entrenador devuelve cuántas filas recibió en cada época y el `id` de su
primera fila, para ver que cada época trae un orden nuevo.
""",
        """
Now we have defined a function `create_shuffle_pipeline` that creates an ingest pipeline.
It reads `training_data_dir` and splits it into `num_shards` parts; each time the trainers
iterate over their parts (one epoch), the data is shuffled again.

### Feeding the pipeline to the trainers

Let's also implement a `TrainingWorker` that consumes the shuffled data of each shard.

For simplicity, we define a Ray actor that emulates the training workers. Specifically,

1. It takes one shard of the shuffle pipeline to train on;
2. it iterates over the shard once per epoch;
3. Then it consumes the dataset in batches;

With `%%ray_actor`, the cell's class becomes an actor class, as with `@ray.remote`. Each
trainer returns how many rows it received in each epoch and the `id` of its first row, to
see that every epoch brings a new order.
""",
    ),
    code(
        """
%%ray_actor
class TrainingWorker:
    def __init__(self, rank: int, shard):
        self.rank = rank
        self.shard = shard

    def train(self, num_epochs: int):
        rows_per_epoch, first_ids = [], []
        for epoch in range(num_epochs):
            # Following code emulates epoch based SGD training.
            print(f"Training... worker: {self.rank}, epoch: {epoch}")
            rows = 0
            for i, batch in enumerate(self.shard.iter_batches(batch_format="numpy")):
                # TODO: replace the code for real training.
                if i == 0:
                    first_ids.append(int(batch["id"][0]))
                rows += len(batch["id"])
            rows_per_epoch.append(rows)
        return rows_per_epoch, first_ids
"""
    ),
    md(
        """
Ejecutamos el pipeline de extremo a extremo: los 4 entrenadores entrenan a la vez, y
`ray.get` espera a los 4. Sus mensajes aparecen bajo la celda.
""",
        """
We run the pipeline end to end: the 4 trainers train at the same time, and `ray.get` waits
for all 4. Their messages appear under the cell.
""",
    ),
    code(
        """
splits = create_shuffle_pipeline(training_data_dir, NUM_TRAINING_WORKERS)

training_workers = [
    TrainingWorker.remote(rank, shard) for rank, shard in enumerate(splits)
]

# Let's run the e2e pipeline
start = time.time()
results = ray.get([worker.train.remote(NUM_EPOCHS) for worker in training_workers])
print(f"total ingestion time: {time.time() - start:.1f}s")
""",
        "ingest",
    ),
    code(
        """
for rank, (rows_per_epoch, first_ids) in enumerate(results):
    print(f"worker {rank}: rows per epoch {rows_per_epoch}, first ids {first_ids}")
""",
        "ingest-results",
    ),
    md(
        """
Cada entrenador recibió el mismo número de filas en cada época (`equal=True`; si el total
no se divide entre 4, sobran como mucho 3 filas), y la primera fila de cada época cambia:
los datos se barajaron de nuevo cada vez.

Para limpiar los procesos remotos, terminamos los actores y borramos los datos temporales.
""",
        """
Each trainer received the same number of rows in each epoch (`equal=True`; if the total
does not divide by 4, at most 3 rows are left out), and the first row of each epoch changes:
the data was shuffled again each time.

To clean up the remote processes, we terminate the actors and delete the temporary data.
""",
    ),
    code(
        """
# To clean the remote processes
for worker in training_workers:
    worker.__ray_terminate__.remote()
shutil.rmtree(training_data_dir, ignore_errors=True)
"""
    ),
    code(
        """
%ray_shutdown
assert not ray.is_initialized()
"""
    ),
]
