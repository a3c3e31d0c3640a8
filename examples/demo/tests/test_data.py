import unittest

from data import make_data


class TestData(unittest.TestCase):
    def test_deterministic(self):
        self.assertEqual(make_data(50, seed=1), make_data(50, seed=1))

    def test_balanced(self):
        _, ys = make_data(100, seed=0)
        self.assertEqual(sum(ys), 50)
