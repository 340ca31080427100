"""The two ConKD teachers: a knowledge-graph recommendation teacher and a dialogue teacher."""
