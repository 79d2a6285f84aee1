"""02: Ray Data on the (offline, generated) NYC taxi trips."""
from .cells import QUIET_RAY_DATA, code, md

RAY_DATA_TAXI = [
    md(
        """
# Ray Data con viajes de taxi de Nueva York

**Qué aprenderás:** a convertir ficheros CSV a Parquet con Ray Data (con `repartition`), a
leerlos de nuevo, a contar filas y ver las primeras, a filtrar con una celda `%%ray_data`
y a previsualizar un dataset con `%ray_data`.

**Duración:** unos 10 minutos de lectura; ejecutarlo tarda menos de un minuto con el tamaño
por defecto (20.000 viajes) en un portátil de 2 núcleos.

El tutorial descarga de S3 cuatro meses de viajes de taxi amarillo de Nueva York (casi 45
millones de viajes). Este cuaderno funciona sin conexión: genera ficheros con las mismas 18
columnas y los mismos tipos con `ray_magic.taxi`. El número de viajes se elige con la
variable de entorno `RAY_MAGIC_TAXI_ROWS` (por ejemplo `45000000` para el tamaño del
tutorial) y la carpeta de datos con `RAY_MAGIC_DATA_DIR` (por defecto `../data`, como en el
tutorial).
""",
        """
# Ray Data on New York taxi trips

**What you will learn:** to convert CSV files to Parquet with Ray Data (with
`repartition`), to read them back, to count rows and look at the first ones, to filter with
a `%%ray_data` cell, and to preview a dataset with `%ray_data`.

**How long:** about 10 minutes of reading; running it takes under a minute at the default
size (20,000 trips) on a 2-core laptop.

The tutorial downloads four months of New York yellow-taxi trips from S3 (almost 45 million
trips). This notebook works offline: it generates files with the same 18 columns and the
same types with `ray_magic.taxi`. The number of trips comes from the environment variable
`RAY_MAGIC_TAXI_ROWS` (for instance `45000000` for the tutorial's size) and the data folder
from `RAY_MAGIC_DATA_DIR` (default `../data`, as in the tutorial).
""",
    ),
    code(
        """
import os
import shutil

import pandas as pd
import ray
"""
    ),
    md(
        """
Cargamos las magias e iniciamos Ray. El panel muestra, además de tareas y actores, cada
ejecución de un dataset lanzada desde las magias, con el progreso de cada operador.
""",
        """
We load the magics and start Ray. Besides tasks and actors, the panel shows each dataset
execution started from the magics, with the progress of each operator.
""",
    ),
    code("%load_ext ray_magic"),
    code("%ray_init", "init"),
    *QUIET_RAY_DATA,
    md(
        """
### Los datos

En el tutorial, esta celda descarga con `boto3` los ficheros
`yellow_tripdata_2009-12.csv`, `yellow_tripdata_2010-06.csv`, `yellow_tripdata_2010-07.csv`
y `yellow_tripdata_2011-04.csv` del bucket `nyc-tlc`. Aquí los escribimos con
`write_taxi_csvs`: mismos nombres, mismas columnas, viajes sintéticos pero verosímiles
(distancias, tarifas, coordenadas alrededor de Nueva York). La misma semilla da siempre los
mismos ficheros, y si ya existen con el mismo tamaño no se vuelven a escribir.
""",
        """
### The data

In the tutorial, this cell downloads the files `yellow_tripdata_2009-12.csv`,
`yellow_tripdata_2010-06.csv`, `yellow_tripdata_2010-07.csv` and
`yellow_tripdata_2011-04.csv` from the `nyc-tlc` bucket with `boto3`. Here we write them
with `write_taxi_csvs`: same names, same columns, synthetic but plausible trips (distances,
fares, coordinates around New York). The same seed always gives the same files, and files
that already exist with the same size are not written again.
""",
    ),
    code(
        """
from ray_magic.taxi import write_taxi_csvs

ROWS = int(os.environ.get("RAY_MAGIC_TAXI_ROWS", "20000"))
direct = os.path.join(os.environ.get("RAY_MAGIC_DATA_DIR", "../data"), "taxi", "")

for path in write_taxi_csvs(direct, ROWS):
    print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")
""",
        "data",
    ),
    md(
        """
### De CSV a Parquet

Leemos cada CSV con `ray.data.read_csv`, lo repartimos en 12 bloques con `repartition` y lo
escribimos en formato Parquet, una carpeta por mes. Parquet guarda los tipos de cada columna
y se lee mucho más rápido que CSV. (Borramos antes la carpeta Parquet para que el cuaderno
pueda ejecutarse de nuevo.)
""",
        """
### From CSV to Parquet

We read each CSV with `ray.data.read_csv`, split it into 12 blocks with `repartition` and
write it as Parquet, one folder per month. Parquet keeps each column's type and reads much
faster than CSV. (We first delete the Parquet folder so that the notebook can run again.)
""",
    ),
    code(
        """
shutil.rmtree(direct + 'parquet', ignore_errors=True)

list_files = sorted(os.listdir(direct))
for file in list_files:
    if file.startswith('yellow_tripdata'):
        ds_csv = ray.data.read_csv(os.path.abspath(direct + file))
        ds_csv.repartition(12).write_parquet(f'{direct}parquet/{file[:-4]}')
        del ds_csv
"""
    ),
    md(
        """
### Leer de nuevo, contar y mirar

`read_parquet` lee todas las carpetas a la vez. `repartition(10)` crea 10 bloques para el
paralelismo. En Ray 2.60 un dataset es perezoso: nada se ejecuta hasta que se pide un
resultado, como `count()` o `limit(5).to_pandas()`, y cada resultado vuelve a leer los
ficheros. `materialize()` ejecuta el reparto ahora y guarda los bloques en el almacén de
objetos, como hacía `repartition` en la versión de Ray del tutorial: los pasos siguientes
parten de esos bloques.
""",
        """
### Read back, count and look

`read_parquet` reads every folder at once. `repartition(10)` makes 10 blocks for
parallelism. On Ray 2.60 a dataset is lazy: nothing runs until a result is asked for, such
as `count()` or `limit(5).to_pandas()`, and each result reads the files again.
`materialize()` runs the repartition now and keeps the blocks in the object store, as
`repartition` did in the tutorial's version of Ray: the next steps start from those blocks.
""",
    ),
    code("ds = ray.data.read_parquet(direct + 'parquet')"),
    code(
        """
# Create 10 blocks for parallelism
ds = ds.repartition(10).materialize()
"""
    ),
    code(
        """
total_rows = ds.count()
print('Total rows: {:,}'.format(total_rows))
""",
        "total-rows",
    ),
    code("ds.limit(5).to_pandas()", "head"),
    md(
        """
### Filtrar con `%%ray_data`

El tutorial se queda con los viajes de más de 2 millas y más de 2 pasajeros:

```python
def transform_batch(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["Trip_Distance"] > 2) & (df["Passenger_Count"] > 2)]

transformed_ds = ds.map_batches(transform_batch)
```

En Ray 2.60, `map_batches` entrega cada lote como un diccionario de arrays de NumPy salvo
que se pida `batch_format="pandas"`, así que ese código falla tal cual. Con la magia, el
cuerpo de la celda es la transformación: el lote se llama `df` (pandas es el formato por
defecto de la magia), y con `--filter` la última expresión es una máscara; se conservan las
filas donde vale `True`. `filtered = ds` guarda el nuevo dataset (perezoso) en `filtered`.
""",
        """
### Filtering with `%%ray_data`

The tutorial keeps the trips longer than 2 miles with more than 2 passengers:

```python
def transform_batch(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["Trip_Distance"] > 2) & (df["Passenger_Count"] > 2)]

transformed_ds = ds.map_batches(transform_batch)
```

On Ray 2.60, `map_batches` hands each batch over as a dict of NumPy arrays unless
`batch_format="pandas"` is asked for, so that code fails as it stands. With the magic, the
cell's body is the transform: the batch is called `df` (pandas is the magic's default
format), and with `--filter` the last expression is a mask; the rows where it is `True` are
kept. `filtered = ds` stores the new (lazy) dataset in `filtered`.
""",
    ),
    code(
        """
%%ray_data filtered = ds --filter
(df["Trip_Distance"] > 2) & (df["Passenger_Count"] > 2)
""",
        "filter",
    ),
    md(
        """
`%ray_data filtered -n 10` ejecuta el dataset y muestra sus columnas con sus tipos, el
número de filas y las 10 primeras (el `limit(10).to_pandas()` del tutorial). El progreso de
cada operador aparece en el panel, no como líneas de registro en la celda.
""",
        """
`%ray_data filtered -n 10` runs the dataset and shows its columns with their types, the
number of rows and the first 10 (the tutorial's `limit(10).to_pandas()`). Each operator's
progress appears in the panel, not as log lines in the cell.
""",
    ),
    code("%ray_data filtered -n 10", "preview"),
    code(
        """
total_rows = %ray_data filtered --count
print('Total rows: {:,}'.format(total_rows))
""",
        "filtered-count",
    ),
    md(
        """
La misma transformación sin magias, con `batch_format="pandas"`, da el mismo número de
filas:
""",
        """
The same transform without the magics, with `batch_format="pandas"`, gives the same number
of rows:
""",
    ),
    code(
        """
def transform_batch(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["Trip_Distance"] > 2) & (df["Passenger_Count"] > 2)]

transformed_ds = ds.map_batches(transform_batch, batch_format="pandas")
transformed_ds.count() == total_rows
""",
        "plain-ray-same",
    ),
    code(
        """
# Explicitly stop
%ray_shutdown
assert not ray.is_initialized()
"""
    ),
]
