"""Write the example notebooks: examples/es/*.ipynb and examples/en/*.ipynb.

Each notebook is one list of cells: a Markdown cell carries its Spanish and its
English text, a code cell exists once, so the two languages share their code
cells by construction. The Spanish text follows the tutorial
(../shared/seed/ray_tutorial_es.txt); the English is its translation.

    .venv/bin/python examples/build_notebooks.py          # (re)write all six
    .venv/bin/python examples/build_notebooks.py --check  # fail if any is stale

Outputs are empty and cell ids fixed, so rebuilding gives identical files.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from dataclasses import dataclass, field

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
LANGUAGES = ("es", "en")


@dataclass
class Md:
    es: str
    en: str


@dataclass
class Code:
    source: str
    tags: list[str] = field(default_factory=list)


def md(es: str, en: str) -> Md:
    return Md(es.strip("\n"), en.strip("\n"))


def code(source: str, *tags: str) -> Code:
    """A code cell; tags let tests find a cell's output without counting cells."""
    return Code(source.strip("\n"), list(tags))


# --- 01: tasks and actors ---------------------------------------------------------------------

TASKS_AND_ACTORS = [
    md(
        """
# Ray en Jupyter: tareas y actores

**Qué aprenderás:** a ejecutar funciones de Python en paralelo como *tareas* de Ray
(`%%ray_task`), a encadenar tareas en un grafo de dependencias (DAG), a agregar
valores en tiempo lineal y en tiempo logarítmico, a convertir clases en *actores*
(`%%ray_actor`), a pasar manejadores de actor a otras tareas y a terminar actores
(`__ray_terminate__`, `%ray_kill`).

**Duración:** unos 20 minutos de lectura; ejecutar todas las celdas tarda menos de un
minuto en un portátil de 2 núcleos.

Este cuaderno sigue el tutorial de Ray en español, con las magias de `ray_magic` en lugar
de los decoradores: cada paso del tutorial está aquí, y lo que cambia se explica en su celda.
""",
        """
# Ray in Jupyter: tasks and actors

**What you will learn:** to run Python functions in parallel as Ray *tasks*
(`%%ray_task`), to chain tasks into a dependency graph (a DAG), to aggregate values in
linear and in logarithmic time, to turn classes into *actors* (`%%ray_actor`), to pass
actor handles to other tasks, and to terminate actors (`__ray_terminate__`, `%ray_kill`).

**How long:** about 20 minutes of reading; running every cell takes under a minute on a
2-core laptop.

This notebook follows the Spanish Ray tutorial, with the `ray_magic` magics in place of
the decorators: every step of the tutorial is here, and what changes is explained in its cell.
""",
    ),
    code(
        """
import os
import time
import warnings

import ray

# Suppress noisy requests warnings.
warnings.filterwarnings("ignore")
os.environ["PYTHONWARNINGS"] = "ignore"
"""
    ),
    md(
        """
* Ray es un proyecto de código abierto para Python paralelo y distribuido.

* La computación paralela y distribuida es un elemento básico de las aplicaciones modernas.
  Necesitamos aprovechar varios núcleos o varias máquinas para acelerar las aplicaciones o
  ejecutarlas a gran escala. La infraestructura para rastrear la web y responder a las
  consultas de búsqueda no son programas de un solo hilo que se ejecutan en el portátil de
  alguien, sino conjuntos de servicios que se comunican e interactúan entre sí.

### ¿Por qué Ray?

Muchos tutoriales explican cómo utilizar el módulo de multiprocesamiento de Python.
Desafortunadamente, el módulo de multiprocesamiento está severamente limitado en su
capacidad para manejar los requerimientos de las aplicaciones modernas. Estos requisitos
incluyen los siguientes:

* Ejecutar el mismo código en más de una máquina.
* Construir microservicios y actores que tengan estado y puedan comunicarse.
* Manejar con gracia los fallos de la máquina.
* Manejo eficiente de objetos grandes y datos numéricos.

Ray aborda todos estos puntos, simplifica las cosas sencillas y hace posible un
comportamiento complejo.

### Conceptos necesarios

La programación tradicional se basa en dos conceptos fundamentales: funciones y clases.
Utilizando estos bloques de construcción, los lenguajes de programación nos permiten
construir innumerables aplicaciones.

Sin embargo, cuando migramos nuestras aplicaciones al entorno distribuido, los conceptos
suelen cambiar.

En un extremo del espectro, tenemos herramientas como OpenMPI, el multiprocesamiento de
Python y ZeroMQ, que proporcionan primitivas de bajo nivel para enviar y recibir mensajes.
Estas herramientas son muy potentes, pero proporcionan una abstracción diferente, por lo
que las aplicaciones de un solo hilo deben reescribirse desde cero para utilizarlas.

En el otro extremo del espectro, tenemos herramientas de dominio específico como
TensorFlow para la formación de modelos, Spark para el procesamiento de datos y SQL, y
Flink para el procesamiento de flujos. Estas herramientas proporcionan abstracciones de
alto nivel como redes neuronales, conjuntos de datos y flujos. Sin embargo, como difieren
de las abstracciones utilizadas para la programación en serie, las aplicaciones deben
reescribirse desde cero para aprovecharlas.

([Figura: el espectro de herramientas distribuidas](https://miro.medium.com/max/720/1*CFtsBP134JiGeQQqoKNcXw.webp))

Ray ocupa un lugar intermedio único. En lugar de introducir nuevos conceptos, Ray toma los
conceptos existentes de funciones y clases y los traslada al entorno distribuido como
tareas y actores. Esta elección de API permite paralelizar aplicaciones en serie sin
grandes modificaciones.
""",
        """
* Ray is an open-source project for parallel and distributed Python.

* Parallel and distributed computing is a staple of modern applications. We need to use
  several cores or several machines to speed applications up or to run them at scale. The
  infrastructure that crawls the web and answers search queries is not a single-threaded
  program running on someone's laptop, but a collection of services that communicate and
  interact with each other.

### Why Ray?

Many tutorials explain how to use Python's multiprocessing module. Unfortunately, the
multiprocessing module is severely limited in its ability to handle the requirements of
modern applications. These requirements include the following:

* Running the same code on more than one machine.
* Building microservices and actors that have state and can communicate.
* Gracefully handling machine failures.
* Efficiently handling large objects and numerical data.

Ray addresses all of these points, makes simple things simple and complex behaviour
possible.

### Necessary concepts

Traditional programming relies on two core concepts: functions and classes. Using these
building blocks, programming languages let us build countless applications.

However, when we migrate our applications to a distributed setting, the concepts
usually change.

At one end of the spectrum we have tools like OpenMPI, Python multiprocessing and ZeroMQ,
which provide low-level primitives for sending and receiving messages. These tools are very
powerful, but they provide a different abstraction, so single-threaded applications must be
rewritten from scratch to use them.

At the other end of the spectrum we have domain-specific tools like TensorFlow for model
training, Spark for data processing and SQL, and Flink for stream processing. These tools
provide high-level abstractions like neural networks, datasets and streams. However,
because they differ from the abstractions used for serial programming, applications must be
rewritten from scratch to take advantage of them.

([Figure: the spectrum of distributed tools](https://miro.medium.com/max/720/1*CFtsBP134JiGeQQqoKNcXw.webp))

Ray occupies a unique middle ground. Instead of introducing new concepts, Ray takes the
existing concepts of functions and classes and translates them to the distributed setting
as tasks and actors. This API choice lets serial applications be parallelized without
major modifications.
""",
    ),
    md(
        """
### Iniciar Ray

El comando `ray.init()` inicia todos los procesos Ray relevantes. En un cluster, esta es la
única línea que necesita cambiar (necesitamos pasar la dirección del cluster). Estos
procesos incluyen lo siguiente:

* Un número de procesos trabajadores para ejecutar funciones Python en paralelo
  (aproximadamente un trabajador por núcleo de CPU).
* Un proceso planificador para asignar "tareas" a los trabajadores (y a otras máquinas).
  Una tarea es la unidad de trabajo programada por Ray y corresponde a una invocación de
  función o método.
* Un almacén de objetos en memoria compartida para compartir objetos eficientemente entre
  los trabajadores (sin crear copias).
* Una base de datos en memoria para almacenar los metadatos necesarios para volver a
  ejecutar tareas en caso de fallo de la máquina.

Los trabajadores Ray son procesos separados en lugar de hilos porque el soporte para
multihilos en Python es muy limitado debido al bloqueo global del intérprete.

**Con las magias:** `%load_ext ray_magic` registra las magias (no arranca nada).
`%ray_init` hace lo que `ray.init()` y además muestra el panel de Ray: el cluster, las
tareas (futuros) con su estado, los actores y los datasets, actualizado en segundo plano.
En un cluster se pasa su dirección: `%ray_init --address HOST:PUERTO`.

Pedimos 4 CPUs *lógicas* (`--num-cpus 4`): Ray reparte tareas según las CPUs que anuncia,
no según los núcleos reales, y las tareas de este cuaderno casi solo duermen; así se ve el
paralelismo del tutorial también en un portátil de 2 núcleos.
""",
        """
### Starting Ray

The `ray.init()` command starts all the relevant Ray processes. On a cluster, this is the
only line that needs to change (we need to pass the cluster address). These processes
include the following:

* A number of worker processes to run Python functions in parallel (roughly one worker per
  CPU core).
* A scheduler process to assign "tasks" to workers (and to other machines). A task is the
  unit of work scheduled by Ray and corresponds to one function or method invocation.
* A shared-memory object store to share objects efficiently between workers (without
  making copies).
* An in-memory database to store the metadata needed to re-run tasks in case of machine
  failure.

Ray workers are separate processes rather than threads because support for multithreading
in Python is very limited due to the global interpreter lock.

**With the magics:** `%load_ext ray_magic` registers the magics (it starts nothing).
`%ray_init` does what `ray.init()` does and also shows the Ray panel: the cluster, the tasks
(futures) with their state, the actors and the datasets, updated in the background. On a
cluster, pass its address: `%ray_init --address HOST:PORT`.

We ask for 4 *logical* CPUs (`--num-cpus 4`): Ray schedules tasks by the CPUs it
advertises, not by the real cores, and the tasks in this notebook mostly sleep; this way
the tutorial's parallelism shows on a 2-core laptop too.
""",
    ),
    code("%load_ext ray_magic"),
    code("%ray_init --num-cpus 4", "init"),
    md(
        """
### Paralelismo con tareas

Para convertir una función f de Python en una "función remota" (una función que puede
ejecutarse de forma remota y asíncrona), declaramos la función con el decorador
`@ray.remote`. Entonces, las invocaciones a la función a través de `f.remote()` devolverán
inmediatamente futuros (un futuro es una referencia a la eventual salida), y la ejecución
real de la función tendrá lugar en segundo plano (nos referimos a esta ejecución como una
tarea).

**Con las magias:** una celda que empieza por `%%ray_task` y solo contiene funciones (e
imports) hace lo mismo que `@ray.remote` con cada función: `f.remote(i)` devuelve un
futuro. Las tareas aparecen en el panel como `f(0)`, `f(1)`, …, y bajo la celda que las
lanza se ve su progreso.

Para que el cuaderno sea rápido, `f` duerme 0,3 s en lugar del segundo del tutorial.
""",
        """
### Parallelism with tasks

To turn a Python function f into a "remote function" (a function that can be executed
remotely and asynchronously), we declare the function with the `@ray.remote` decorator.
Then invocations of the function through `f.remote()` immediately return futures (a future
is a reference to the eventual output), and the actual execution of the function takes place
in the background (we refer to this execution as a task).

**With the magics:** a cell that starts with `%%ray_task` and holds only functions (and
imports) does what `@ray.remote` does to each function: `f.remote(i)` returns a future.
The tasks show in the panel as `f(0)`, `f(1)`, …, and the cell that submits them shows
their progress under it.

To keep the notebook quick, `f` sleeps 0.3 s instead of the tutorial's one second.
""",
    ),
    code(
        """
%%ray_task
def f(x):
    time.sleep(0.3)
    return x
"""
    ),
    code(
        """
# Start 4 tasks in parallel.
result_ids = []
for i in range(4):
    result_ids.append(f.remote(i))
"""
    ),
    code(
        """
results = ray.get(result_ids)
results
""",
        "parallel-results",
    ),
    md(
        """
Dado que la llamada a `f.remote(i)` retorna inmediatamente, se pueden ejecutar cuatro
copias de f en paralelo simplemente ejecutando esa línea cuatro veces.

En lugar de `ray.get`, también vale `%ray_get result_ids`: espera con el progreso en el
panel y deja en `result_ids` los valores.
""",
        """
Since the call to `f.remote(i)` returns immediately, four copies of f can be executed in
parallel simply by running that line four times.

Instead of `ray.get`, `%ray_get result_ids` works too: it waits, with progress in the panel,
and leaves the values in `result_ids`.
""",
    ),
    md(
        """
### Dependencia de tareas

Las tareas también pueden depender de otras tareas. A continuación, la tarea
`multiply_matrices` utiliza las salidas de las dos tareas `create_matrix`, por lo que no
comenzará a ejecutarse hasta que se hayan ejecutado las dos primeras tareas. Las salidas de
las dos primeras tareas se pasarán automáticamente como argumentos a la tercera tarea y los
futuros se sustituirán por sus valores correspondientes. De este modo, las tareas pueden
componerse con dependencias DAG arbitrarias.
""",
        """
### Task dependencies

Tasks can also depend on other tasks. Below, the `multiply_matrices` task uses the outputs
of the two `create_matrix` tasks, so it will not start running until the first two tasks
have run. The outputs of the first two tasks are automatically passed as arguments to the
third task, and the futures are replaced by their corresponding values. In this way, tasks
can be composed with arbitrary DAG dependencies.
""",
    ),
    code(
        """
%%ray_task
import numpy as np

def create_matrix(size):
    return np.random.normal(size=size)

def multiply_matrices(x, y):
    return np.dot(x, y)
"""
    ),
    code(
        """
x_id = create_matrix.remote([1000, 1000])
y_id = create_matrix.remote([1000, 1000])
z_id = multiply_matrices.remote(x_id, y_id)

# Get the results.
z = ray.get(z_id)
z.shape
"""
    ),
    md(
        """
**Con las magias, la celda entera puede ser la tarea.** Una celda `%%ray_task` que no
define funciones se envía a Ray como una sola tarea. Las variables del cuaderno que lee
viajan con ella; si una variable es un futuro (aquí `x_id` e `y_id`), Ray espera a que
termine y le pasa su valor, igual que a `multiply_matrices`. El valor de la última
expresión es el resultado de la tarea. Con `--block` la celda espera y `z` recibe el valor;
sin `--block`, `z` recibiría el futuro y la celda mostraría su estado en vivo.
""",
        """
**With the magics, the whole cell can be the task.** A `%%ray_task` cell that defines no
functions is sent to Ray as one task. The notebook variables it reads travel with it; if a
variable is a future (here `x_id` and `y_id`), Ray waits for it to finish and hands the task
its value, just as with `multiply_matrices`. The value of the last expression is the task's
result. With `--block` the cell waits and `z` receives the value; without `--block`, `z`
would receive the future and the cell would show its state live.
""",
    ),
    code(
        """
%%ray_task z --block
np.dot(x_id, y_id)
""",
        "dag-body",
    ),
    code(
        """
# The body cell computed the same product as multiply_matrices.
np.allclose(z, ray.get(z_id))
""",
        "dag-same",
    ),
    md(
        """
Sin `--block`, la celda devuelve enseguida: `norm_id` es un futuro, y la celda muestra la
tarea pendiente y, al terminar, un resumen breve de su valor.
""",
        """
Without `--block`, the cell returns at once: `norm_id` is a future, and the cell shows the
pending task and, once done, a short preview of its value.
""",
    ),
    code(
        """
%%ray_task norm_id
np.linalg.norm(x_id)
"""
    ),
    code('print(f"norm of x: {ray.get(norm_id):.1f}")', "norm"),
    md(
        """
### Agregación eficaz de valores

Las relaciones de tareas pueden utilizarse de formas mucho más sofisticadas. Por ejemplo,
supongamos que queremos agregar 8 valores. Este ejemplo utiliza la suma de números enteros,
pero en muchas aplicaciones, la agregación de grandes vectores a través de múltiples
máquinas puede ser un cuello de botella. En este caso, el cambio de una sola línea de código
puede cambiar el tiempo de ejecución de la agregación de lineal a logarítmico en el número
de valores que se agregan.

([Figura: agregación lineal y agregación en árbol](https://miro.medium.com/max/720/1*vHz3troEmr4uLns0V8VmdA.webp))

Como se ha descrito anteriormente, para alimentar la salida de una tarea como entrada en una
tarea posterior, basta con pasar el futuro devuelto por la primera tarea como argumento en
la segunda tarea. El programador de Ray tendrá en cuenta automáticamente esta dependencia
entre tareas. La segunda tarea no se ejecutará hasta que la primera haya terminado, y la
salida de la primera tarea se enviará automáticamente a la máquina en la que se esté
ejecutando la segunda.

Aquí `add` duerme 0,3 s (no 1 s): la agregación lineal encadena 7 sumas (unos 2,1 s) y la
agregación en árbol solo 3 niveles (unos 0,9 s). Medimos ambas.
""",
        """
### Efficient aggregation of values

Task relationships can be used in much more sophisticated ways. For example, suppose we
want to aggregate 8 values. This example uses integer addition, but in many applications
aggregating large vectors across multiple machines can be a bottleneck. In that case,
changing a single line of code can change the aggregation's running time from linear to
logarithmic in the number of values being aggregated.

([Figure: linear and tree-shaped aggregation](https://miro.medium.com/max/720/1*vHz3troEmr4uLns0V8VmdA.webp))

As described above, to feed the output of one task as input to a later task, simply pass
the future returned by the first task as an argument to the second task. Ray's scheduler
automatically takes this dependency between tasks into account. The second task will not
run until the first has finished, and the output of the first task is automatically sent
to the machine on which the second is running.

Here `add` sleeps 0.3 s (not 1 s): the linear aggregation chains 7 additions (about 2.1 s)
and the tree-shaped one only 3 levels (about 0.9 s). We measure both.
""",
    ),
    code(
        """
%%ray_task
def add(x, y):
    time.sleep(0.3)
    return x + y
"""
    ),
    code(
        """
# Aggregate the values slowly. This approach takes O(n) where n is the
# number of values being aggregated. In this case, 7 x 0.3 seconds.
start = time.time()
id1 = add.remote(1, 2)
id2 = add.remote(id1, 3)
id3 = add.remote(id2, 4)
id4 = add.remote(id3, 5)
id5 = add.remote(id4, 6)
id6 = add.remote(id5, 7)
id7 = add.remote(id6, 8)
result = ray.get(id7)
print(f"linear: {result} in {time.time() - start:.1f} s")

# Aggregate the values in a tree-structured pattern. This approach
# takes O(log(n)). In this case, 3 x 0.3 seconds.
start = time.time()
id1 = add.remote(1, 2)
id2 = add.remote(3, 4)
id3 = add.remote(5, 6)
id4 = add.remote(7, 8)
id5 = add.remote(id1, id2)
id6 = add.remote(id3, id4)
id7 = add.remote(id5, id6)
result = ray.get(id7)
print(f"tree: {result} in {time.time() - start:.1f} s")
""",
        "aggregation",
    ),
    code("result", "aggregation-result"),
    md(
        """
El mismo cambio de una sola línea, con un bucle: en la versión lenta cada suma espera a la
anterior; en la rápida, las sumas nuevas van al final de la lista y las de un mismo nivel
se ejecutan en paralelo.
""",
        """
The same one-line change, as a loop: in the slow version each addition waits for the
previous one; in the fast one, new additions go to the end of the list and those of one
level run in parallel.
""",
    ),
    code(
        """
# Slow approach.
start = time.time()
values = [1, 2, 3, 4, 5, 6, 7, 8]
while len(values) > 1:
    values = [add.remote(values[0], values[1])] + values[2:]
result = ray.get(values[0])
print(f"slow: {result} in {time.time() - start:.1f} s")


# Fast approach.
start = time.time()
values = [1, 2, 3, 4, 5, 6, 7, 8]
while len(values) > 1:
    values = values[2:] + [add.remote(values[0], values[1])]
result = ray.get(values[0])
print(f"fast: {result} in {time.time() - start:.1f} s")
""",
        "aggregation-loops",
    ),
    md(
        """
### De las clases a los actores

Es un reto escribir aplicaciones interesantes sin usar clases, y esto es tan cierto en el
entorno distribuido como en un único núcleo.

Ray te permite tomar una clase Python y declararla con el decorador `@ray.remote`. Cada vez
que se instancia la clase, Ray crea un nuevo "actor", que es un proceso que se ejecuta en
algún lugar del clúster y contiene una copia del objeto. Las invocaciones a métodos en ese
actor se convierten en tareas que se ejecutan en el proceso del actor y pueden acceder y
mutar el estado del actor. De este modo, los actores permiten que el estado mutable se
comparta entre múltiples tareas de un modo que las funciones remotas no permiten.

Los actores individuales ejecutan métodos en serie (cada método individual es atómico) para
que no haya condiciones de carrera. El paralelismo puede lograrse mediante la creación de
múltiples actores.

**Con las magias:** `%%ray_actor c` hace lo que `@ray.remote` con la clase de la celda y
además crea un actor, `c = Counter.remote()`. El actor aparece en el panel con sus llamadas
hechas y pendientes.
""",
        """
### From classes to actors

It is hard to write interesting applications without using classes, and this is as true in
the distributed setting as on a single core.

Ray lets you take a Python class and declare it with the `@ray.remote` decorator. Each time
the class is instantiated, Ray creates a new "actor", which is a process that runs somewhere
in the cluster and holds a copy of the object. Method invocations on that actor become tasks
that run in the actor's process and can access and mutate the actor's state. In this way,
actors let mutable state be shared between multiple tasks in a way that remote functions
do not.

Individual actors execute methods serially (each individual method is atomic), so there are
no race conditions. Parallelism can be achieved by creating multiple actors.

**With the magics:** `%%ray_actor c` does what `@ray.remote` does to the cell's class and
also creates one actor, `c = Counter.remote()`. The actor shows in the panel with its calls
done and pending.
""",
    ),
    code(
        """
%%ray_actor c
class Counter(object):
    def __init__(self):
        self.x = 0

    def inc(self):
        self.x += 1

    def get_value(self):
        return self.x
"""
    ),
    code(
        """
# Check the actor's counter value.
print(ray.get(c.get_value.remote()))  # 0

# Increment the counter twice and check the value again.
c.inc.remote()
c.inc.remote()
print(ray.get(c.get_value.remote()))  # 2
""",
        "counter",
    ),
    md(
        """
El ejemplo anterior es el uso más simple posible de los actores. La línea
`Counter.remote()` (aquí, la magia `%%ray_actor c`) crea un nuevo proceso actor, que tiene
una copia del objeto `Counter`. Las llamadas a `c.get_value.remote()` y `c.inc.remote()`
ejecutan tareas en el proceso actor remoto y mutan el estado del actor.

#### Manejadores de Actor

En el ejemplo anterior, sólo invocamos métodos en el actor desde el script principal de
Python. Uno de los aspectos más poderosos de los actores es que podemos pasar manejadores a
un actor, lo que permite a otros actores u otras tareas invocar métodos en el mismo actor.

El siguiente ejemplo crea un actor que almacena mensajes. Varias tareas de trabajo envían
mensajes al actor repetidamente, y el script principal de Python lee los mensajes
periódicamente.

Cada trabajador envía aquí 5 mensajes, uno cada 0,3 s (el tutorial envía 100, uno por
segundo), para que las tareas terminen pronto.
""",
        """
The example above is the simplest possible use of actors. The line `Counter.remote()` (here,
the `%%ray_actor c` magic) creates a new actor process, which holds a copy of the `Counter`
object. The calls to `c.get_value.remote()` and `c.inc.remote()` execute tasks in the remote
actor process and mutate the actor's state.

#### Actor handles

In the example above, we only invoked methods on the actor from the main Python script. One
of the most powerful aspects of actors is that we can pass around handles to an actor, which
lets other actors or other tasks invoke methods on the same actor.

The following example creates an actor that stores messages. Several worker tasks
repeatedly push messages to the actor, and the main Python script reads the messages
periodically.

Each worker sends 5 messages here, one every 0.3 s (the tutorial sends 100, one per
second), so that the tasks finish soon.
""",
    ),
    code(
        """
%%ray_actor message_actor
class MessageActor(object):
    def __init__(self):
        self.messages = []

    def add_message(self, message):
        self.messages.append(message)

    def get_and_clear_messages(self):
        messages = self.messages
        self.messages = []
        return messages
"""
    ),
    code(
        """
%%ray_task
# Define a remote function which loops around and pushes
# messages to the actor.
def worker(message_actor, j):
    for i in range(5):
        time.sleep(0.3)
        message_actor.add_message.remote(
            "Message {} from worker {}.".format(i, j))
"""
    ),
    code(
        """
# Start 3 tasks that push messages to the actor.
worker_ids = [worker.remote(message_actor, j) for j in range(3)]

# Periodically get the messages and print them.
received = 0
for _ in range(5):
    new_messages = ray.get(message_actor.get_and_clear_messages.remote())
    received += len(new_messages)
    print("New messages:", new_messages)
    time.sleep(0.5)
""",
        "messages",
    ),
    code(
        """
# Wait for the workers to finish, then read what is left.
ray.get(worker_ids)
received += len(ray.get(message_actor.get_and_clear_messages.remote()))
print(f"{received} messages received")
""",
        "messages-total",
    ),
    md(
        """
* Los actores son extremadamente potentes. Permiten tomar una clase Python e instanciarla
  como un microservicio que puede ser consultado desde otros actores y tareas e incluso
  desde otras aplicaciones.

* Las tareas y los actores son las abstracciones básicas que proporciona Ray. Estos dos
  conceptos son muy generales y se pueden utilizar para implementar aplicaciones
  sofisticadas, incluidas las bibliotecas integradas de Ray para el aprendizaje por
  refuerzo, el ajuste de hiperparámetros, la aceleración de Pandas, y mucho más.
""",
        """
* Actors are extremely powerful. They let you take a Python class and instantiate it as a
  microservice that can be queried from other actors and tasks and even from other
  applications.

* Tasks and actors are the core abstractions that Ray provides. These two concepts are very
  general and can be used to implement sophisticated applications, including Ray's built-in
  libraries for reinforcement learning, hyperparameter tuning, speeding up Pandas, and much
  more.
""",
    ),
    md(
        """
### Terminar actores

Un actor es un proceso: vive hasta que se termina. La última celda del tutorial crea un
actor que arranca un hilo de larga duración y lo termina con `__ray_terminate__`, que
cierra el proceso con un `exit(0)` después de las llamadas que ya tenía en cola: el hilo
no llega a imprimir su segundo mensaje.
""",
        """
### Terminating actors

An actor is a process: it lives until it is terminated. The tutorial's last cell creates an
actor that starts a long-running thread and terminates it with `__ray_terminate__`, which
ends the process with an `exit(0)` after the calls it already had queued: the thread never
prints its second message.
""",
    ),
    code(
        """
%%ray_actor task
import threading

class Task:

    def __init__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        print('Started long-running task')
        time.sleep(10)
        print('You shouldn\\'t see this because the process has been killed')
"""
    ),
    code("task.__ray_terminate__.remote()   # kills the process with an `exit(0)`"),
    md(
        """
`%ray_kill c` mata un actor de inmediato, como `ray.kill(c)`, sin esperar a sus llamadas
pendientes. Una llamada posterior falla con `RayActorError`, y el panel muestra el actor
como muerto.
""",
        """
`%ray_kill c` kills an actor at once, as `ray.kill(c)` does, without waiting for its
pending calls. A later call fails with `RayActorError`, and the panel shows the actor as
dead.
""",
    ),
    code("%ray_kill c"),
    code(
        """
try:
    ray.get(c.get_value.remote())
except ray.exceptions.RayActorError as err:
    print("c is dead:", type(err).__name__)
""",
        "killed",
    ),
    md(
        """
Para terminar, `%ray_shutdown` detiene el panel y apaga Ray, como `ray.shutdown()`.
""",
        """
To finish, `%ray_shutdown` stops the panel and shuts Ray down, as `ray.shutdown()` does.
""",
    ),
    code("%ray_shutdown\nassert not ray.is_initialized()"),
]

# The timeline section goes in only once the %ray_timeline magic exists.
TIMELINE = [
    md(
        """
### Timeline

`%ray_timeline` dibuja las tareas y llamadas a actores del cuaderno como barras, una fila
por trabajador, a lo largo del tiempo. `--cell N` muestra solo las de una celda: aquí, la
celda de la agregación, donde se ven las 7 sumas encadenadas y después las sumas en árbol,
varias a la vez.
""",
        """
### Timeline

`%ray_timeline` draws the notebook's tasks and actor calls as bars, one row per worker, over
time. `--cell N` shows only one cell's: here, the aggregation cell, where the 7 chained
additions come first and then the tree-shaped ones, several at a time.
""",
    ),
    code("%ray_timeline --cell {aggregation_cell}", "timeline"),
]


# --- 02: Ray Data on taxi trips ---------------------------------------------------------------

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
    md(
        """
Ray Data, en un cuaderno, escribe el progreso de cada ejecución como líneas de registro
bajo la celda. Las ejecuciones que lanzan las magias muestran su progreso en el panel, sin
esas líneas; para que las llamadas directas a Ray Data de este cuaderno tampoco llenen las
celdas, apagamos su progreso propio.
""",
        """
In a notebook, Ray Data writes the progress of every execution as log lines under the
cell. Executions started from the magics show their progress in the panel, without those
lines; so that this notebook's direct Ray Data calls do not fill the cells either, we turn
their own progress output off.
""",
    ),
    code(
        """
ctx = ray.data.DataContext.get_current()
ctx.enable_progress_bars = False
ctx.print_on_execution_start = False
"""
    ),
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


# --- 03: ML ingest --------------------------------------------------------------------------

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
    md(
        """
Ray Data, en un cuaderno, escribe el progreso de cada ejecución como líneas de registro
bajo la celda. Las ejecuciones que lanzan las magias muestran su progreso en el panel, sin
esas líneas; para que las llamadas directas a Ray Data de este cuaderno tampoco llenen las
celdas, apagamos su progreso propio.
""",
        """
In a notebook, Ray Data writes the progress of every execution as log lines under the
cell. Executions started from the magics show their progress in the panel, without those
lines; so that this notebook's direct Ray Data calls do not fill the cells either, we turn
their own progress output off.
""",
    ),
    code(
        """
ctx = ray.data.DataContext.get_current()
ctx.enable_progress_bars = False
ctx.print_on_execution_start = False
"""
    ),
    md(
        """
Ejecutémoslo! Primero, algunos argumentos: 4 entrenadores, 5 épocas, filas de 10 columnas
de enteros (80 bytes por fila).
""",
        """
Let's run it! First, some arguments: 4 trainers, 5 epochs, rows of 10 integer columns
(80 bytes per row).
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

NOTEBOOKS: dict[str, list] = {
    "01_tasks_and_actors": TASKS_AND_ACTORS,
    "02_ray_data_taxi": RAY_DATA_TAXI,
    "03_ml_ingest": ML_INGEST,
}


def has_timeline_magic() -> bool:
    """Whether %ray_timeline exists yet (another issue adds it)."""
    source = (HERE.parent / "ray_magic" / "magics.py").read_text()
    return "def ray_timeline" in source


def with_timeline(cells: list) -> list:
    """Insert the timeline section before the last Markdown + shutdown cells."""
    numbered = [c for c in cells if isinstance(c, Code)]
    # Execution counts follow code cells one to one when the notebook runs top to bottom.
    aggregation = next(i for i, c in enumerate(numbered, start=1) if "aggregation" in c.tags)
    section = [TIMELINE[0], code(TIMELINE[1].source.format(aggregation_cell=aggregation), "timeline")]
    return cells[:-2] + section + cells[-2:]


def build(name: str, cells: list, language: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(cells):
        cell_id = f"{name[:2]}-{index:02d}"
        if isinstance(cell, Md):
            nb.cells.append(nbformat.v4.new_markdown_cell(getattr(cell, language), id=cell_id))
        else:
            new = nbformat.v4.new_code_cell(cell.source, id=cell_id)
            if cell.tags:
                new.metadata["tags"] = list(cell.tags)
            nb.cells.append(new)
    nbformat.validate(nb)
    return nb


def notebooks() -> dict[pathlib.Path, str]:
    """Every notebook's path and its text as the generator writes it."""
    out = {}
    for name, cells in NOTEBOOKS.items():
        if name == "01_tasks_and_actors" and has_timeline_magic():
            cells = with_timeline(cells)
        for language in LANGUAGES:
            nb = build(name, cells, language)
            out[HERE / language / f"{name}.ipynb"] = nbformat.writes(nb) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in notebooks().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if args.check and stale:
        print("stale: " + ", ".join(str(p.relative_to(HERE.parent)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
