"""01: tasks, a task DAG, aggregation, actors, actor handles, terminating actors."""
from .cells import code, md

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
""",
        "aggregation-slow",
    ),
    code(
        """
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
        "aggregation-tree",
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
### Timeline

`%ray_timeline --cell N` dibuja como barras las tareas que lanzó la celda N, una fila por
trabajador, a lo largo del tiempo (sin `--cell`, las de todo el cuaderno). Abajo, una debajo
de la otra, la agregación lenta (celda `[{cell:aggregation-slow}]`) y la agregación en árbol
(celda `[{cell:aggregation-tree}]`) si el cuaderno se ejecuta de principio a fin (cambia los
números si lo ejecutaste en otro orden): 7 rondas, una detrás de otra, frente a 3 niveles
con varias sumas a la vez.
""",
        """
### Timeline

`%ray_timeline --cell N` draws the tasks that cell N submitted as bars, one row per worker,
over time (without `--cell`, the whole notebook's). Below, one under the other, the slow
aggregation (cell `[{cell:aggregation-slow}]`) and the tree-shaped one (cell
`[{cell:aggregation-tree}]`) when the notebook runs from top to bottom (change the numbers
if you ran the cells in another order): 7 rounds, one after the other, against 3 levels
with several additions at a time.
""",
    ),
    code(
        """
slow = %ray_timeline --cell {cell:aggregation-slow}
tree = %ray_timeline --cell {cell:aggregation-tree}
display(slow, tree)
""",
        "timeline",
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
