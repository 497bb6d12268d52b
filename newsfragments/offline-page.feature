The web page works without internet access, because mnemic serves the chart library (uPlot) itself.
