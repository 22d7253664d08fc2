"""A toy request handler that leaves reference cycles behind, for
``python -m cyclegc run --insight examples/leaky_service.py [N]``.

Each request makes three kinds of cyclic garbage, each allocated on a line
marked ``# cycle:`` (the tests find the lines by these markers):

* a Request that stores one of its own bound methods (Request -> method ->
  Request), 2 objects;
* a tree of one parent and three children that point back at it (Tree ->
  list -> Tree), 5 objects: the parent, its list of children, the three
  children (whose __dict__ values are inline);
* a Session holding the exception it caught, whose traceback holds the
  frame that holds the Session (a classic: Session -> ValueError ->
  traceback -> frame -> Session).
"""
import sys


class Request:
    def __init__(self, n):
        self.n = n
        self.callback = self.done            # a bound method of itself

    def done(self):
        return self.n


class Tree:
    __slots__ = ("parent", "children", "value")

    def __init__(self, parent=None, value=0):
        self.parent = parent
        self.children = []
        self.value = value


class Session:
    def __init__(self):
        self.error = None

    def run(self):
        try:
            raise ValueError("boom")
        except ValueError as exc:
            self.error = exc                 # exception -> traceback -> frame -> self


def handle(n):
    Request(n)                                         # cycle: request
    root = Tree(value=n)                               # cycle: tree
    for i in range(3):
        root.children.append(Tree(root, i))
    Session().run()                                    # cycle: session


def main(argv):
    count = int(argv[1]) if len(argv) > 1 else 1000
    for n in range(count):
        handle(n)


if __name__ == "__main__":
    main(sys.argv)
