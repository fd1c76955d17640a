"""The recurrence for each Keras backend; `keras_auxloss.recurrence` picks one."""
