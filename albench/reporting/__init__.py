"""Tables, the HTML report and the paper's numbers."""
